"""The webhook settings tests share: a spec-style secret and the spec's schedule, compressed."""

from __future__ import annotations

import base64

SECRET = "whsec_" + base64.b64encode(b"webhook test key 0123456789").decode()
COMPRESSED_SCHEDULE = "0,0.05,0.5,3,12,30,60,60"  # the spec's shape, 100 times faster
