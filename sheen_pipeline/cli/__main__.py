"""`python -m sheen_pipeline.cli`: how a short-lived command hands pending webhook deliveries
over to a process of their own."""

from sheen_pipeline.cli import main

main()
