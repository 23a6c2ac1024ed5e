"""The embedded AWS sandbox: a moto server, extended where moto falls short of AWS Batch."""
