#!/usr/bin/env node
// Evaluate AWS requests against IAM policies with @cloud-copilot/iam-simulate.
//
// Reads batches from stdin, one JSON document per line, and answers each with one JSON line on
// stdout (so a test module keeps one Node process for all its batches):
//   in:  {"policies": {"<name>": <policy document>, ...},
//         "requests": [{"id": "...", "principal": "<ARN or service principal>",
//                       "action": "s3:GetObject", "resource": "<ARN>", "accountId": "<owner>",
//                       "context": {"aws:SecureTransport": "true", ...},
//                       "identityPolicies": ["<name>", ...], "resourcePolicy": "<name>"|null}]}
//   out: {"results": [{"id": "...", "decision": "Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied"
//                      |"Error", "explanation": "..." (when not Allowed),
//                      "ignoredContextKeys": [...]}]}
// A request the simulator cannot run (a policy or context key it rejects) answers "Error" with the
// simulator's message: it never passes for an Allowed.
import { createInterface } from "node:readline";
import { loadPolicy } from "@cloud-copilot/iam-policy";
import {
  allowedContextKeysForRequest,
  getDenialReasons,
  runSimulation,
} from "@cloud-copilot/iam-simulate";

// runSimulation drops context keys whose variable part is joined by ":" rather than "/" (it
// matches `aws:PrincipalTag/x` but not `kms:EncryptionContext:aws:sns:topicArn`). For a request
// whose only dropped keys are such documented keys of its action, the same core engine runs on
// the full context (what the package's runUnsafeSimulation does, minus its unnamed resource
// policy bug). The package exports neither, so they are loaded from its dist folder.
const dist = new URL(".", import.meta.resolve("@cloud-copilot/iam-simulate"));
const { authorize } = await import(new URL("core_engine/CoreSimulatorEngine.js", dist));
const { AwsRequestImpl } = await import(new URL("request/request.js", dist));
const { RequestContextImpl } = await import(new URL("requestContext.js", dist));
const { DiscoveryContextKeyConstraints } = await import(
  new URL("context_keys/discoveryContextKeyConstraints.js", dist)
);

async function onlyColonVariableKeys(request, ignored) {
  const [service, action] = request.action.split(":");
  const allowed = await allowedContextKeysForRequest(service, action, request.resource, false);
  const prefixes = allowed
    .filter((key) => key.includes(":${"))
    .map((key) => key.slice(0, key.indexOf("${")));
  return ignored.every((key) => prefixes.some((prefix) => key.toLowerCase().startsWith(prefix)));
}

function authorizeWithFullContext(simulation) {
  return authorize({
    request: new AwsRequestImpl(
      simulation.request.principal,
      simulation.request.resource,
      simulation.request.action,
      new RequestContextImpl(simulation.request.contextVariables),
    ),
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy
      ? loadPolicy(simulation.resourcePolicy, { name: "ResourcePolicy" })
      : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: "Strict",
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]),
    },
    serviceSettings: { s3: { blockPublicAccess: undefined } },
  });
}

function conditionText(condition) {
  const values = [condition.values ?? []]
    .flat()
    .map((v) => v?.value ?? v)
    .map((v) => JSON.stringify(v));
  const state = condition.matches ? "holds" : "fails";
  return `${condition.operator} ${condition.conditionKeyValue} ${values.join(",")} ${state}`;
}

function statementText(policy, explain) {
  // One line per statement whose action matched: what else matched, and each condition's state.
  const id = explain.identifier ?? "?";
  const parts = [
    `resource ${explain.resourceMatch ? "matches" : "does not match"}`,
    `principal ${explain.principalMatch ?? "n/a"}`,
  ];
  const conditions = [explain.conditions ?? []].flat();
  if (conditions.length > 0) parts.push(`conditions: ${conditions.map(conditionText).join("; ")}`);
  return `${policy} policy ${explain.effect} statement ${id}: ${parts.join(", ")}`;
}

function statementsOf(analysis) {
  // The statements that could have decided (their action matched), with why each applied or not.
  const lines = [];
  for (const [label, section] of [
    ["identity", analysis?.identityAnalysis],
    ["resource", analysis?.resourceAnalysis],
  ]) {
    if (!section) continue;
    for (const kind of ["denyStatements", "allowStatements", "unmatchedStatements"]) {
      for (const statement of section[kind] ?? []) {
        const explain = statement.explain ?? statement;
        if (explain.actionMatch) lines.push(statementText(label, explain));
      }
    }
  }
  return lines.length > 0 ? lines : ["no statement of any policy names this action"];
}

async function evaluate(batch) {
  const policies = batch.policies ?? {};
  const policy = (name) => {
    if (!(name in policies)) throw new Error(`unknown policy ${JSON.stringify(name)}`);
    return policies[name];
  };
  const results = [];
  for (const request of batch.requests ?? []) {
    const base = { id: request.id };
    try {
      const simulation = {
        request: {
          principal: request.principal,
          action: request.action,
          resource: { resource: request.resource, accountId: request.accountId },
          contextVariables: request.context ?? {},
        },
        identityPolicies: (request.identityPolicies ?? []).map((name) => ({
          name,
          policy: policy(name),
        })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: request.resourcePolicy ? policy(request.resourcePolicy) : undefined,
      };
      const response = await runSimulation(simulation, {});
      if (response.resultType === "error") {
        results.push({ ...base, decision: "Error", explanation: JSON.stringify(response.errors) });
        continue;
      }
      const single =
        response.resultType === "single" ? response.result : (response.results ?? [])[0];
      let decision = response.overallResult;
      let analysis = single?.analysis;
      let ignored = single?.ignoredContextKeys ?? [];
      let engine = "runSimulation";
      if (ignored.length > 0 && (await onlyColonVariableKeys(request, ignored))) {
        analysis = authorizeWithFullContext(simulation);
        decision = analysis.result;
        ignored = [];
        engine = "core engine, full context";
      }
      const result = { ...base, decision, engine, ignoredContextKeys: ignored };
      if (decision !== "Allowed") {
        const denials = (analysis ? getDenialReasons(analysis) : []).map((d) =>
          d.denialType === "Explicit"
            ? `explicit deny by ${d.policyType} policy statement ${d.statementId ?? d.statementIndex}`
            : `no ${d.policyType} policy allows it`,
        );
        result.explanation = [...denials, ...statementsOf(analysis)].join(" | ");
      }
      results.push(result);
    } catch (error) {
      results.push({ ...base, decision: "Error", explanation: String(error?.stack ?? error) });
    }
  }
  return { results };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await evaluate(JSON.parse(line));
  } catch (error) {
    answer = { error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
