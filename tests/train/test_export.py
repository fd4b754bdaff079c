"""Export of a trained run: the PEFT folder and the merged HF folder reproduce its logits."""

import numpy as np
import peft
import torch
import transformers

from pathjax.configs import tiny
from pathjax.train import export, loop, restore


def test_export_peft_and_merged_reproduce_the_trained_model(tmp_path):
    config = tiny.get_config("depression,random")
    config.data.data_dir = str(tmp_path / "data")
    config.mesh.shape = (1, 1, 1)
    config.train.num_steps = 3
    config.train.eval_every = 1000
    config.train.tensorboard = False
    result = loop.train(config, str(tmp_path / "run"))
    lines = export.export_run(
        config,
        str(tmp_path / "run"),
        peft_dir=str(tmp_path / "peft"),
        merged_dir=str(tmp_path / "merged"),
    )
    assert len(lines) == 2 and "step 3" in lines[0]
    ids = np.random.RandomState(0).randint(0, 49152, (2, 12)).astype(np.int32)
    ours = np.asarray(result.model(ids))
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        theirs = merged(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    # The restored checkpoint equals the in-memory result.
    trained = restore.load_trained(config, str(tmp_path / "run"))
    np.testing.assert_allclose(np.asarray(trained.model(ids)), ours, atol=1e-6, rtol=0)
    assert (tmp_path / "peft" / "adapter_config.json").exists()
    assert peft.PeftConfig.from_pretrained(str(tmp_path / "peft")).r == config.lora.rank
