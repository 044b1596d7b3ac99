"""A Quix Streams splitter, written the idiomatic way: one dataframe per rule, filtered and
sent with `to_topic`, at-least-once. After `--records` records it idles until killed, so the
benchmark can read its CPU time and peak RSS.

    python quix_splitter.py --brokers B --source S --group G --targets T0,...,T9 \
        --rules 100 --records N
"""

import argparse
import time

from quixstreams import Application


def main():
    parser = argparse.ArgumentParser()
    for flag in ("brokers", "source", "group", "targets"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--records", type=int, required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        auto_create_topics=False,
        use_changelog_topics=False,
    )
    source = app.topic(args.source, value_deserializer="json")
    targets = [app.topic(name, value_serializer="json") for name in args.targets.split(",")]
    sdf = app.dataframe(source)
    field = f"p{args.rules}"
    seen = {"records": 0}

    def count(_value):
        seen["records"] += 1
        if seen["records"] >= args.records:
            app.stop()

    sdf = sdf.update(count)
    for i in range(args.rules):
        value = f"P{i}"
        branch = sdf.filter(lambda r, v=value: r.get(field) == v and r.get("id", -1) >= 0)
        branch.to_topic(targets[i % len(targets)])
    app.run()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
