"""The `roost` command line: a front end over the SDK (`roost.client`) only."""
