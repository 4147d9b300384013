"""A paho-mqtt (1.6) client driven by JSON commands, one per line on stdin.

Run with the system interpreter (/usr/bin/python3, Debian python3-paho-mqtt). The first
argument is a lifetime in seconds: the process exits by itself after it, whatever happens.

Commands (each may carry an "id"; the answer event repeats it):
  {"op": "connect", "host", "port", "client_id", "protocol": 4|5, "clean": bool,
   "keepalive": int, "session_expiry": int, "will": {"topic", "payload", "qos", "retain",
   "properties": {...}}}                          -> {"event": "connected", "rc", "session_present"}
  {"op": "subscribe", "topic", "qos", "no_local", "retain_as_published", "retain_handling",
   "subscription_id"}                             -> {"event": "subscribed", "granted": [...]}
  {"op": "publish", "topic", "payload", "qos", "retain", "properties": {...}}
                                                  -> {"event": "published", "mid", "rc"}
  {"op": "disconnect"}                            -> {"event": "disconnected"}
  {"op": "abort"}   the process exits at once, without DISCONNECT (the OS closes the socket)
  {"op": "exit"}
Unsolicited events: {"event": "message", "topic", "payload_hex", "qos", "retain",
"properties"} and {"event": "connection_lost", "rc"}.

Properties are given by paho's names: UserProperty ([[k, v], ...]), ContentType,
ResponseTopic, CorrelationData (hex), PayloadFormatIndicator, MessageExpiryInterval.
"""
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

LIFETIME = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
out_lock = threading.Lock()
state = {"connected": None, "suback": {}, "disconnected": False}
client = None


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def die_later():
    time.sleep(LIFETIME)
    os._exit(3)


def make_properties(packet_type, spec):
    if not spec:
        return None
    props = Properties(packet_type)
    for name, value in spec.items():
        if name == "UserProperty":
            value = [tuple(pair) for pair in value]
        elif name == "CorrelationData":
            value = bytes.fromhex(value)
        setattr(props, name, value)
    return props


def props_json(props):
    if props is None:
        return {}
    data = props.json()
    if "UserProperty" in data:
        data["UserProperty"] = [list(pair) for pair in data["UserProperty"]]
    return data


def wait_until(check, seconds=5.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(0.005)
    return None


def on_connect(_client, _userdata, flags, rc, properties=None):
    state["connected"] = {
        "rc": int(rc.value) if hasattr(rc, "value") else int(rc),
        "session_present": bool(flags.get("session present", 0)),
    }


def on_subscribe(_client, _userdata, mid, granted, properties=None):
    state["suback"][mid] = [int(g.value) if hasattr(g, "value") else int(g) for g in granted]


def on_message(_client, _userdata, msg):
    emit({
        "event": "message",
        "topic": msg.topic,
        "payload_hex": msg.payload.hex(),
        "qos": msg.qos,
        "retain": bool(msg.retain),
        "properties": props_json(getattr(msg, "properties", None)),
    })


def on_disconnect(_client, _userdata, rc, properties=None):
    code = int(rc.value) if hasattr(rc, "value") else int(rc)
    if not state["disconnected"]:
        emit({"event": "connection_lost", "rc": code})


def do_connect(cmd):
    global client
    protocol = mqtt.MQTTv5 if cmd.get("protocol", 4) == 5 else mqtt.MQTTv311
    clean = cmd.get("clean", True)
    if protocol == mqtt.MQTTv5:
        client = mqtt.Client(client_id=cmd.get("client_id", ""), protocol=protocol)
    else:
        client = mqtt.Client(client_id=cmd.get("client_id", ""), clean_session=clean, protocol=protocol)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    will = cmd.get("will")
    if will:
        client.will_set(will["topic"], will.get("payload", ""), will.get("qos", 0), will.get("retain", False),
                        make_properties(PacketTypes.WILLMESSAGE, will.get("properties")))
    keepalive = cmd.get("keepalive", 60)
    if protocol == mqtt.MQTTv5:
        props = None
        if "session_expiry" in cmd:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = cmd["session_expiry"]
        client.connect(cmd["host"], cmd["port"], keepalive, clean_start=clean, properties=props)
    else:
        client.connect(cmd["host"], cmd["port"], keepalive)
    client.loop_start()
    result = wait_until(lambda: state["connected"])
    if result is None:
        return {"event": "error", "error": "no CONNACK"}
    return dict({"event": "connected"}, **result)


def do_subscribe(cmd):
    if client._protocol == mqtt.MQTTv5:
        options = SubscribeOptions(qos=cmd.get("qos", 0), noLocal=cmd.get("no_local", False),
                                   retainAsPublished=cmd.get("retain_as_published", False),
                                   retainHandling=cmd.get("retain_handling", 0))
        props = None
        if "subscription_id" in cmd:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = cmd["subscription_id"]
        rc, mid = client.subscribe(cmd["topic"], options=options, properties=props)
    else:
        rc, mid = client.subscribe(cmd["topic"], cmd.get("qos", 0))
    if rc != mqtt.MQTT_ERR_SUCCESS:
        return {"event": "error", "error": "subscribe rc %d" % rc}
    granted = wait_until(lambda: state["suback"].get(mid))
    if granted is None:
        return {"event": "error", "error": "no SUBACK"}
    return {"event": "subscribed", "granted": granted}


def do_publish(cmd):
    props = make_properties(PacketTypes.PUBLISH, cmd.get("properties"))
    info = client.publish(cmd["topic"], cmd.get("payload", "").encode("utf-8"), cmd.get("qos", 0),
                          cmd.get("retain", False), properties=props)
    info.wait_for_publish(timeout=5)
    if not info.is_published():
        return {"event": "error", "error": "publish not completed (rc %d)" % info.rc}
    return {"event": "published", "mid": info.mid, "rc": info.rc}


def do_disconnect(_cmd):
    state["disconnected"] = True
    client.disconnect()
    client.loop_stop()
    return {"event": "disconnected"}


HANDLERS = {"connect": do_connect, "subscribe": do_subscribe, "publish": do_publish, "disconnect": do_disconnect}


def main():
    threading.Thread(target=die_later, daemon=True).start()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        op = cmd.get("op")
        if op == "abort":
            os._exit(0)
        if op == "exit":
            break
        try:
            answer = HANDLERS[op](cmd)
        except Exception as exc:  # reported to the test, which fails with the message
            answer = {"event": "error", "error": "%s: %r" % (op, exc)}
        answer["id"] = cmd.get("id")
        emit(answer)
    sys.stdout.flush()
    os._exit(0)


main()
