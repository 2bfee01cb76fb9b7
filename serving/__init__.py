"""Serving: the answers a CRM system asks for — scores, stage, reasons and next-best action.

Owns the wire schemas (`schemas`), the scoring core shared with batch scoring and publishing
(`scoring/`: model bundle and registry source, frame scorer, one member's answer, published
cards, ports to the domain libraries), the online stores it reads and writes (`online/`: Feast
reader, contact log) and the FastAPI app (`api/`: app, routes, dependencies, service,
security, metrics, middleware).
"""
