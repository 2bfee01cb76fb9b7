"""The score API for CRM systems (FastAPI): scores, stage, reasons and next-best action."""
