"""Telling someone: pipeline events sent to a signed webhook (Slack-compatible) and a JSONL file.

events.py    the event kinds (one explicit list), an event and the JSON payload every sink gets
config.py    the notifications file (--notifications): sinks and which events go to each
sinks.py     the webhook (HMAC-SHA256 signed, retried with backoff) and the JSONL file
notifier.py  Notifier: routes each event, delivers webhooks in a background thread, never raises

Standard library only: the watch loop and the monitor stay small.
"""
