"""EC2 tasks (issue #11): the agent that runs a task's script on its instance (exec.py, one
self-contained file), the user data that starts it (userdata.py), the receiver that follows a
run's queue (receiver.py) and the output kept in S3 (durable.py)."""
