"""What runs inside a roost microVM besides the agent: roost's init (PID 1). Standard library only."""
