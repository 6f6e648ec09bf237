"""The Lambda function's code, as deployed on AWS: handler(event, context) returns the output parameters."""


def check_size(event, context):
    return {"verdict": "ok" if int(event["size"]) <= int(event["limit"]) else "too big"}
