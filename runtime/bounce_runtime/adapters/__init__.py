"""AWS adapters: the only modules that talk to AWS (boto3 clients are injected)."""
