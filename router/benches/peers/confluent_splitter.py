"""A hand-written confluent-kafka splitter: what a team would write instead of streamsplit.

Consume, decode JSON, evaluate the rules as Python lambdas, produce a copy to each matching
rule's topic, and commit after the producer has flushed (at-least-once). After `--records`
records it idles until killed, so the benchmark can read its CPU time and peak RSS.

    python confluent_splitter.py --brokers B --source S --group G --targets T0,...,T9 \
        --rules 100 --records N
"""

import argparse
import json
import time

from confluent_kafka import Consumer, Producer


def rules(count, targets):
    """Rule i matches records whose `p<count>` field is `P<i>`; copies go to targets[i % len]."""
    field = f"p{count}"
    return [
        ((lambda r, v=f"P{i}": r.get(field) == v and r.get("id", -1) >= 0), targets[i % len(targets)])
        for i in range(count)
    ]


def main():
    parser = argparse.ArgumentParser()
    for flag in ("brokers", "source", "group", "targets"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--records", type=int, required=True)
    args = parser.parse_args()
    table = rules(args.rules, args.targets.split(","))
    consumer = Consumer({
        "bootstrap.servers": args.brokers, "group.id": args.group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })
    producer = Producer({
        "bootstrap.servers": args.brokers, "acks": "all", "linger.ms": 5,
        "enable.idempotence": True,
    })
    consumer.subscribe([args.source])
    seen = 0
    while seen < args.records:
        batch = consumer.consume(num_messages=1000, timeout=1.0)
        for message in batch:
            if message.error():
                continue
            seen += 1
            try:
                record = json.loads(message.value())
            except ValueError:
                continue
            for condition, topic in table:
                if condition(record):
                    while True:
                        try:
                            producer.produce(topic, message.value(), message.key(), headers=message.headers())
                            break
                        except BufferError:
                            producer.poll(0.01)
            producer.poll(0)
        if batch:
            producer.flush()
            consumer.commit(asynchronous=False)
    consumer.close()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
