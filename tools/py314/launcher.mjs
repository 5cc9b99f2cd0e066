// Runs one Python script on CPython 3.14 (Pyodide: CPython compiled to WebAssembly), offline.
//
//   node --stack-size=8000 tools/py314/launcher.mjs [--mount DIR]... [--path DIR]... SCRIPT [ARG]...
//
// Host folders are mounted at their own paths (the current directory and the script's folder
// always), so paths and pytest node ids read as on the host. `--path` folders go first on
// sys.path (after the script's folder). Pyodide writes no bytecode unless the script asks
// (sys.dont_write_bytecode is true). PYTHONHASHSEED is 0, so set and frozenset constants compile
// to the same bytes on every run. The exit status is the script's (the SystemExit code; 1 on an
// uncaught exception).
// Use tools/py314/runner.py rather than calling this directly: it adds the Node flags.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const mounts = [process.cwd()];
const paths = [];
const argv = process.argv.slice(2);
while (argv.length && argv[0].startsWith("--")) {
  const [option, value] = argv.splice(0, 2);
  if (value === undefined) throw new Error(`${option} needs a value`);
  if (option === "--mount") mounts.push(path.resolve(value));
  else if (option === "--path") paths.push(path.resolve(value));
  else throw new Error(`unknown option ${option}`);
}
if (!argv.length) {
  console.error("usage: launcher.mjs [--mount DIR]... [--path DIR]... SCRIPT [ARG]...");
  process.exit(2);
}
const [script, ...args] = argv;
mounts.push(path.dirname(path.resolve(script)));

const { loadPyodide } = await import(path.join(repo, "node_modules", "pyodide", "pyodide.mjs"));
const py = await loadPyodide({ env: { ...process.env, PYTHONHASHSEED: "0" } });
const write = (fd) => ({ write: (buffer) => fs.writeSync(fd, buffer) });
py.setStdout(write(1));
py.setStderr(write(2));

// Shortest first, and a folder inside one already mounted is visible through it.
const mounted = [];
for (const dir of [...new Set(mounts)].sort((a, b) => a.length - b.length)) {
  if (mounted.some((outer) => dir === outer || dir.startsWith(outer + path.sep))) continue;
  py.FS.mkdirTree(dir);
  py.FS.mount(py.FS.filesystems.NODEFS, { root: dir }, dir);
  mounted.push(dir);
}

py.globals.set("launch_request", JSON.stringify({
  script: path.resolve(script), args, paths, cwd: process.cwd(),
}));
let status;
try {
  status = py.runPython(`
import json, os, runpy, sys, traceback
def launch(request):
    os.chdir(request["cwd"])
    sys.argv = [request["script"], *request["args"]]
    sys.path[0:0] = [os.path.dirname(request["script"]), *request["paths"]]
    try:
        runpy.run_path(request["script"], run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0
launch(json.loads(launch_request))
`);
} catch (error) {
  // A failure of Pyodide itself (for instance the WebAssembly stack): its message, not the
  // minified JavaScript around it.
  console.error(String(error && error.message ? error.message : error).slice(0, 4000));
  status = 1;
}
process.exitCode = status;
