"""Running one planned task: generating its files within its time limit and writing them into
the build's workspace, which generated paths can never escape."""
