"""HTTP (`sheen serve`): previews, the signed ingress, build status, events and live streams."""
