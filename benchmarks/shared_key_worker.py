"""
Case 4 of ``make bench``: one of several processes marking chats on one API key, each a
``MarkChatReadOperator`` (``python -m benchmarks.shared_key_worker '[5200, 5204]'``). Prints what it did as
one JSON line.
"""

from __future__ import annotations

import json
import sys


def main(chat_ids: list[int]) -> dict[str, object]:
    from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

    try:
        result = MarkChatReadOperator(task_id="mark", chat_ids=chat_ids, progress_interval=1e9).execute({})
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"[:300]}
    return {"marked": len(result["marked"])}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
