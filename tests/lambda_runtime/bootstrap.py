"""The function process: what Lambda's python3.13 runtime does, over stdin/stdout.

Run as ``python -I -S bootstrap.py TASK_ROOT RUNTIME_DIR HANDLER``: no site-packages, so the
only importable code is the standard library, the unzipped deployment package (TASK_ROOT,
first on the path as /var/task is) and RUNTIME_DIR (what the runtime image adds: boto3,
botocore and their dependencies, awslambdaric). The handler's module is imported once (the
init phase); then each stdin line is one invocation ``{"request_id", "deadline_ms",
"invoked_function_arn", "event"}`` and gets one line back on the original stdout: ``{"result"}``
or ``{"errorType", "errorMessage", "stackTrace"}``. What the function prints goes to stderr,
as its logs go to CloudWatch. ``{"modules": true}`` answers where every imported module
came from. Standard library only: this file runs inside the clean environment.
"""

import importlib
import json
import os
import sys
import traceback


def main() -> None:
    task_root, runtime_dir, handler = sys.argv[1:4]
    sys.path[:0] = [task_root, runtime_dir]
    os.chdir(task_root)
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    from awslambdaric.lambda_context import LambdaContext

    module_name, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    for line in sys.stdin:
        invoke = json.loads(line)
        if invoke.get("modules"):
            files = {
                name: getattr(module, "__file__", None) for name, module in sys.modules.items()
            }
            reply = {"modules": {name: path for name, path in files.items() if path}}
        else:
            context = LambdaContext(
                invoke["request_id"],
                None,
                None,
                invoke["deadline_ms"],
                invoke["invoked_function_arn"],
            )
            try:
                reply = {"result": function(invoke["event"], context)}
            except Exception as exc:
                reply = {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc),
                }
        sys.stdout.flush()
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
