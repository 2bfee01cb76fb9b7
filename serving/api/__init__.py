"""The FastAPI app: `create_app`, its lifespan, routes, dependencies, request-level service,
API keys, metrics, middleware and logging. Domain errors become HTTP codes here only."""
