"""Create, through moto's IAM API, a user allowed sns:Publish and an access key for it; print the key as shell
assignments. These are the first 4 requests moto serves without authentication (INITIAL_NO_AUTH_ACTION_COUNT=4);
from then on it verifies every SigV4 signature."""
import json
import sys

import boto3

endpoint = sys.argv[1]
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="bootstrap",
    aws_secret_access_key="bootstrap",
)
iam.create_user(UserName="callsign")
policy = iam.create_policy(
    PolicyName="callsign-sns-publish",
    PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}
    ),
)
iam.attach_user_policy(UserName="callsign", PolicyArn=policy["Policy"]["Arn"])
key = iam.create_access_key(UserName="callsign")["AccessKey"]
print(f"CALLSIGN_TEST_MOTO_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"CALLSIGN_TEST_MOTO_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
