"""Check the bodies Callsign sends to Infobip and ClickSend against the providers' generated request models.

Each body must parse with the model of its endpoint, and dump back with every field Callsign sent kept, unchanged
(so an unknown or misspelt field, or a wrong type, is a failure: the generated models drop unknown fields
silently). Broken copies of each body must be refused, so the check itself is shown to fail.

Usage: python check.py <dir with the bodies written by the `bodies_for_*_generated_models` tests>
"""
import copy
import json
import pathlib
import sys

from clicksend.models.send_sms_request import SendSmsRequest
from clicksend.models.send_voice_message_request import SendVoiceMessageRequest
from infobip_api_client.models.calls_advanced_body import CallsAdvancedBody
from infobip_api_client.models.sms_request import SmsRequest

MODELS = {
    "infobip-sms.json": SmsRequest,
    "infobip-sms-no-from.json": SmsRequest,
    "infobip-voice.json": CallsAdvancedBody,
    "clicksend-sms.json": SendSmsRequest,
    "clicksend-voice.json": SendVoiceMessageRequest,
}


def kept(sent, dumped, path="$"):
    """The first place where `dumped` lost or changed what `sent` had, or None."""
    if isinstance(sent, dict):
        if not isinstance(dumped, dict):
            return f"{path}: not an object after parsing"
        for k, v in sent.items():
            if k not in dumped:
                return f"{path}.{k}: not a field of the model (dropped)"
            where = kept(v, dumped[k], f"{path}.{k}")
            if where:
                return where
        return None
    if isinstance(sent, list):
        if not isinstance(dumped, list) or len(dumped) != len(sent):
            return f"{path}: list changed"
        for i, (a, b) in enumerate(zip(sent, dumped)):
            where = kept(a, b, f"{path}[{i}]")
            if where:
                return where
        return None
    return None if sent == dumped and type(sent) is type(dumped) else f"{path}: {sent!r} became {dumped!r}"


def problem(model, body):
    """Why `model` refuses `body`, or None when it takes it whole."""
    try:
        parsed = model.from_dict(copy.deepcopy(body))
    except Exception as e:  # pydantic's ValidationError, or the generator's own checks
        return f"refused: {str(e).splitlines()[0]}"
    if parsed is None:
        return "refused: nothing parsed"
    return kept(body, parsed.to_dict())


def broken(name, body):
    """Copies of a good body that the model must refuse."""
    out = []
    b = copy.deepcopy(body)
    b["messages"][0]["unknown_field"] = "x"
    out.append(("an unknown field", b))
    if name.startswith("infobip-sms"):
        b = copy.deepcopy(body)
        del b["messages"][0]["content"]
        out.append(("no content", b))
        b = copy.deepcopy(body)
        b["messages"][0]["text"] = b["messages"][0].pop("content")["text"]
        out.append(("a v2 `text`", b))
    elif name == "infobip-voice.json":
        b = copy.deepcopy(body)
        b["messages"][0]["destinations"] = "not a list"
        out.append(("destinations as a string", b))
    else:
        if name == "clicksend-sms.json":  # `body` is required on SMS (optional in the voice model)
            b = copy.deepcopy(body)
            del b["messages"][0]["body"]
            out.append(("no body", b))
        else:
            b = copy.deepcopy(body)
            b["messages"][0]["machine_detection"] = "no"
            out.append(("machine_detection as text", b))
        b = copy.deepcopy(body)
        b["messages"][0]["to"] = 14155552671
        out.append(("a number as an integer", b))
    return out


def main():
    folder = pathlib.Path(sys.argv[1])
    failures = refused = 0
    for name, model in MODELS.items():
        body = json.loads((folder / name).read_text())
        why = problem(model, body)
        if why:
            failures += 1
            print(f"FAIL {name} ({model.__name__}): {why}")
        else:
            print(f"ok   {name} ({model.__name__})")
        for what, bad in broken(name, body):
            refused += 1
            if problem(model, bad) is None:
                failures += 1
                print(f"FAIL {name}: a body with {what} was taken; the check cannot fail")
    print(f"models: {len(MODELS)} bodies checked, {refused} broken copies tried, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
