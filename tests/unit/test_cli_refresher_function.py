"""Which refresher function `broker-tokens refresh` hands its run to: the environment's, else the stack's."""

from __future__ import annotations

import argparse
import io

from broker_tokens.cli.context import Context


def context(environ: dict[str, str], outputs: dict[str, str]) -> Context:
    args = argparse.Namespace(prefix=None, region=None, table=None, stack="desk", local=False, no_color=True)
    ctx = Context(args, stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
    ctx.__dict__["stack_outputs"] = outputs  # what describe-stacks answered for --stack desk
    return ctx


def test_the_stack_output_names_the_function() -> None:
    assert context({}, {"RefresherFunctionName": "desk-Refresher-1"}).refresher_function == "desk-Refresher-1"


def test_the_environment_wins_and_without_either_there_is_none() -> None:
    both = context({"REFRESHER_FUNCTION_NAME": "mine"}, {"RefresherFunctionName": "desk-Refresher-1"})
    assert both.refresher_function == "mine"
    assert context({}, {}).refresher_function is None
