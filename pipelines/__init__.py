"""Jobs that move data: ingest and importers into the lake, the lifecycle simulator, and the
end-to-end demo. Each job is thin orchestration over pure logic kept elsewhere."""
