"""Sessions: the company's WhatsApp numbers, as stored rows and as running engines.

`records` is the admin side of a session row (create, update, delete, list, logs, the
masked engine config); `manager` holds the `SessionManager`, which starts, stops and
resumes one connector per session, records its status and QR codes, and hands engine
events to the inbound pipeline.
"""
