"""The only package that imports boto3: clients, retries, the rate budget, tags, lookups, waits."""
