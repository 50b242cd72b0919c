#!/usr/bin/env python3
"""Write the typical review the load measurements use: the recorded Deployment CREATE,
hardened so the default policies allow it (or left as recorded with --denied), moved to
namespace `shop` so that a webhook without cluster access judges it (platform defaults).

    python3 review.py [--denied] > review.json
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
fixture = os.path.join(here, "../../../../../shared/fixtures/k8s-wire/admission-review/deployment-create.json")
review = json.load(open(fixture))
request = review["request"]
request["namespace"] = "shop"
request["object"]["metadata"]["namespace"] = "shop"
if "--denied" not in sys.argv:
    pod = request["object"]["spec"]["template"]["spec"]
    pod["securityContext"] = {"runAsNonRoot": True, "runAsUser": 65532,
                              "seccompProfile": {"type": "RuntimeDefault"}}
    container = pod["containers"][0]
    container["securityContext"] = {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True}
    container["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"memory": "128Mi"}}
json.dump(review, sys.stdout, separators=(",", ":"))
