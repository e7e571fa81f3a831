"""What the CLI process and the Locust process both use, below both: the child's configuration
(``child.json``) and environment, the worker key's names, the redaction of secrets, and the live view's
alert rules. No Locust, gevent or zmq here.
"""
