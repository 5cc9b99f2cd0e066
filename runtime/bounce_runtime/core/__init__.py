"""Pure core: no boto3, no I/O, no clock."""
