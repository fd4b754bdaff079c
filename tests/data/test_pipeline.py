"""The grain pipeline: loss mask on the target only, bucketing, per-process slices, resuming."""

import copy
import json

import numpy as np
import pytest

from pathjax.data import items, pipeline, schema


@pytest.fixture(scope="module")
def records():
    # Every split, so choice, narrative and third_person prompts are all covered.
    return [r for s in schema.SPLITS for r in items.generate_split("shuffled", s, 40, 5)]


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_prompt_and_target_tokens_concatenate_to_the_text(records, tokenizer):
    for r in records:
        prompt, target = _ids(tokenizer, r["prompt"]), _ids(tokenizer, r["target"])
        # The space starts the target, so no BPE merge crosses the boundary...
        assert tokenizer.decode(prompt + target) == r["prompt"] + r["target"]
        # ...and tokenizing the whole text gives the very same tokens.
        assert _ids(tokenizer, r["prompt"] + r["target"]) == prompt + target


def test_loss_mask_covers_exactly_the_target_and_eos(records, tokenizer):
    data = pipeline.tokenize(records, tokenizer)
    bos = [tokenizer.bos_token_id] if pipeline.adds_bos(tokenizer) else []
    for r, ids, start in zip(records, data.ids, data.target_starts, strict=True):
        prompt, target = _ids(tokenizer, r["prompt"]), _ids(tokenizer, r["target"])
        assert list(ids[:start]) == bos + prompt
        assert list(ids[start:]) == target + [tokenizer.eos_token_id]

    batches = pipeline.make_batches(
        records, tokenizer, global_batch_size=8, shuffle=False, process_index=0, process_count=1
    )
    for batch in batches:
        for row in range(8):
            r = records[batch["example_index"][row]]
            mask = batch["loss_mask"][row].astype(bool)
            ids = batch["input_ids"][row]
            assert list(ids[mask]) == _ids(tokenizer, r["target"]) + [tokenizer.eos_token_id]
            assert tokenizer.decode(ids[mask][:-1]) == r["target"]
            assert not (mask & (batch["attention_mask"][row] == 0)).any()
            assert batch["target_index"][row] == r["target_index"]
            # The head's positions predict exactly the masked tokens, in order.
            weights = batch["target_weights"][row].astype(bool)
            predicted = batch["target_positions"][row][weights] + 1
            np.testing.assert_array_equal(predicted, np.flatnonzero(mask))
            assert not batch["target_positions"][row][~weights].any()
        assert batch["target_positions"].shape[1] == pipeline.target_bucket(
            int(batch["target_weights"].sum(1).max())
        )


def test_batches_have_the_documented_contract(records, gpt2_tokenizer):
    batches = pipeline.make_batches(
        records,
        gpt2_tokenizer,
        global_batch_size=8,
        max_length=256,
        process_index=0,
        process_count=1,
    )
    lengths = pipeline.tokenize(records, gpt2_tokenizer).lengths
    for batch in batches:
        b, length = batch["input_ids"].shape
        assert b == 8 and length in pipeline.default_buckets(256)
        assert batch["input_ids"].dtype == np.int32
        assert batch["attention_mask"].dtype == np.int32
        assert batch["loss_mask"].dtype == np.float32
        assert batch["target_index"].shape == batch["example_index"].shape == (8,)
        # The smallest bucket that fits the longest example.
        longest = lengths[batch["example_index"]].max()
        assert length >= longest and not [
            x for x in pipeline.default_buckets(256) if longest <= x < length
        ]
        np.testing.assert_array_equal(
            batch["attention_mask"].sum(1), lengths[batch["example_index"]]
        )


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_restored_iterator_yields_exactly_the_uninterrupted_batches(records, gpt2_tokenizer):
    kwargs = dict(global_batch_size=16, seed=11, num_epochs=3, process_index=0, process_count=1)
    uninterrupted = _take(pipeline.make_iterator(records, gpt2_tokenizer, **kwargs), 20)

    interrupted = pipeline.make_iterator(records, gpt2_tokenizer, **kwargs)
    _take(interrupted, 7)
    state = json.loads(json.dumps(interrupted.get_state()))  # As a checkpoint stores it.
    resumed = pipeline.make_iterator(records, gpt2_tokenizer, **kwargs)
    resumed.set_state(state)
    for expected, got in zip(uninterrupted[7:], _take(resumed, 13), strict=True):
        assert expected.keys() == got.keys()
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key])


def test_processes_get_disjoint_slices_that_cover_the_global_batch(records, gpt2_tokenizer):
    kwargs = dict(global_batch_size=12, seed=2, num_epochs=2)
    whole = pipeline.make_batches(
        records, gpt2_tokenizer, process_index=0, process_count=1, **kwargs
    )
    parts = [
        pipeline.make_batches(records, gpt2_tokenizer, process_index=p, process_count=3, **kwargs)
        for p in range(3)
    ]
    assert len(whole) == len(parts[0]) == len(records) * 2 // 12
    for step in range(len(whole)):
        slices = [part[step] for part in parts]
        indices = [s["example_index"] for s in slices]
        assert all(len(i) == 4 for i in indices)
        assert len(set(np.concatenate(indices))) == 12
        np.testing.assert_array_equal(np.concatenate(indices), whole[step]["example_index"])
        np.testing.assert_array_equal(
            np.concatenate([s["input_ids"] for s in slices]), whole[step]["input_ids"]
        )


def test_each_epoch_is_a_fresh_shuffle_of_every_example(records, gpt2_tokenizer):
    n = len(records)
    batches = pipeline.make_batches(
        records,
        gpt2_tokenizer,
        global_batch_size=n // 5,
        seed=4,
        num_epochs=2,
        process_index=0,
        process_count=1,
    )
    order = np.concatenate([b["example_index"] for b in batches])
    first, second = order[:n], order[n:]
    assert sorted(first) == sorted(second) == list(range(n))
    assert list(first) != list(second) and list(first) != list(range(n))
    other_seed = pipeline.make_batches(
        records,
        gpt2_tokenizer,
        global_batch_size=n // 5,
        seed=5,
        process_index=0,
        process_count=1,
    )
    assert list(np.concatenate([b["example_index"] for b in other_seed])) != list(first)


def test_bos_is_prepended_outside_the_loss_mask(records, gpt2_tokenizer):
    tokenizer = copy.deepcopy(gpt2_tokenizer)
    data = pipeline.tokenize(records[:4], tokenizer, add_bos=True)
    plain = pipeline.tokenize(records[:4], tokenizer, add_bos=False)
    for with_bos, without, s1, s0 in zip(
        data.ids, plain.ids, data.target_starts, plain.target_starts, strict=True
    ):
        assert with_bos[0] == tokenizer.bos_token_id and list(with_bos[1:]) == list(without)
        assert s1 == s0 + 1


def test_a_tokenizer_without_eos_is_a_clear_error(records, gpt2_tokenizer):
    tokenizer = copy.deepcopy(gpt2_tokenizer)
    tokenizer.eos_token = None
    assert tokenizer.eos_token_id is None
    with pytest.raises(ValueError, match="no EOS token.*eos_token"):
        pipeline.make_batches(
            records, tokenizer, global_batch_size=4, process_index=0, process_count=1
        )


def test_bad_pipeline_arguments_are_clear_errors(records, gpt2_tokenizer):
    make = lambda **kw: pipeline.make_batches(records, gpt2_tokenizer, **kw)
    with pytest.raises(ValueError, match="multiple of the process count 3"):
        make(global_batch_size=8, process_index=0, process_count=3)
    with pytest.raises(ValueError, match="longer than the largest bucket 16.*raise max_length"):
        make(global_batch_size=8, max_length=16, process_index=0, process_count=1)
    with pytest.raises(ValueError, match="do not fill one global batch"):
        make(global_batch_size=len(records) + 1, process_index=0, process_count=1)
    spaced = [{**records[0], "prompt": records[0]["prompt"] + " "}]
    with pytest.raises(ValueError, match="must not end with whitespace"):
        pipeline.make_batches(
            spaced, gpt2_tokenizer, global_batch_size=1, process_index=0, process_count=1
        )


def test_batches_by_format_are_short_for_narrative_and_resume_exactly(gpt2_tokenizer):
    train = items.generate_split("depression", "train", 200, 0)
    kwargs = dict(
        global_batch_size=4, seed=3, num_epochs=None, max_length=256, batch_by_format=True
    )
    it = pipeline.make_iterator(train, gpt2_tokenizer, **kwargs)
    lengths = {}
    for _ in range(8):
        batch = next(it)
        formats = {train[i]["format"] for i in batch["example_index"]}
        assert len(formats) == 1  # One format per batch.
        lengths.setdefault(formats.pop(), set()).add(batch["input_ids"].shape[1])
    assert set(lengths) == {"choice", "narrative"}
    assert max(lengths["narrative"]) < min(lengths["choice"])
    state = it.get_state()
    expected = [next(it)["example_index"] for _ in range(3)]
    resumed = pipeline.make_iterator(train, gpt2_tokenizer, **kwargs)
    resumed.set_state(state)
    assert all((next(resumed)["example_index"] == e).all() for e in expected)
