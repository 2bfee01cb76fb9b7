"""Pure generation logic of the member lifecycle simulator.

Owns: simulation parameters, the member population and its latent lifecycle, seasonality, orders,
campaign waves with their true effects, tiers, behaviour events, canonical table assembly and the
ground-truth functions. No file I/O, no clock: every function takes a seeded
`numpy.random.Generator` (when it draws) and explicit dates. Times inside the simulator are float
days since the start of the window (00:00 UTC of the first day). `pipelines.simulate` is the job
that writes the results.
"""
