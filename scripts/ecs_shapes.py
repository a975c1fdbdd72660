#!/usr/bin/env python3
"""Write api/src/ecs-shapes.json: botocore's ECS model without its
documentation, the shapes berth's API server walks to put responses in
the model's wire types and to check requests' members and types.

Run with the venv's python (make api-deps): .build/venv/bin/python
scripts/ecs_shapes.py > api/src/ecs-shapes.json
"""
import json
import sys

import botocore
import botocore.session

model = botocore.session.get_session().get_service_model("ecs")
shapes = {}
for name in model.shape_names:
    s = model.shape_for(name)
    out = {"type": s.type_name}
    if s.type_name == "structure":
        out["members"] = {k: v.name for k, v in s.members.items()}
    elif s.type_name == "list":
        out["member"] = s.member.name
    elif s.type_name == "map":
        out["value"] = s.value.name
    shapes[name] = out
ops = {}
for op in model.operation_names:
    o = model.operation_model(op)
    ops[op] = {
        "input": o.input_shape.name if o.input_shape else None,
        "output": o.output_shape.name if o.output_shape else None,
    }
json.dump(
    {"botocore": botocore.__version__, "operations": ops, "shapes": shapes},
    sys.stdout,
    separators=(",", ":"),
    sort_keys=True,
)
print()
