"""Verdict notifications: Slack, Microsoft Teams, any webhook and email, sent once by the CLI process.

targets.py   where to send: threshold files' ``notify:`` entries, ``--notify`` / ``$LOADGATE_NOTIFY``,
             secrets resolved from the environment, and how a target is named without its secret
select.py    which outcomes hold for a target (fail, warn, inconclusive, pass, recovered via
             history.sqlite, regressed via the baseline comparison, resources)
message.py   what the message says, as plain facts; slack.py, teams.py, webhook.py, email.py format it,
             each escaping untrusted text for its own markup (text.py: one line, no links)
deliver.py   one try after another with a timeout each, backoff, a bounded total time
send.py      plan, deliver, print, and record the outcome in run.json
"""
