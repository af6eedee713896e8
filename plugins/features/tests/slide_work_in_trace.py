#!/usr/bin/python3
"""Per slide, what a traced flowrun run did to it: how many times tissue_tiler tiled it and how many of its tiles
tile_reader read (one traced call per tile, labelled with the slide id). Prints "slide tilings reads" lines,
sorted; a slide the run never touched is absent. usage: slide_work_in_trace.py TRACE.json"""
import collections
import json
import sys

trace = json.load(open(sys.argv[1]))
stage_type = {s["id"]: s["type"] for s in trace["histoflow"]["stages"]}
tilings, reads = collections.Counter(), collections.Counter()
for event in trace["traceEvents"]:
    if event.get("ph") != "X" or "items" not in event.get("args", {}):  # calls only, not create/open/flush
        continue
    kind = stage_type.get(event["name"])
    if kind == "tissue_tiler":
        tilings[event["args"]["items"]] += 1
    elif kind == "tile_reader":
        reads[event["args"]["items"]] += 1
for slide in sorted(set(tilings) | set(reads)):
    print(slide, tilings[slide], reads[slide])
