"""How tests/data/legacy_v1 was made (kept as a record; it ran against commit 3455225).

A 300-pair reverse-and-map corpus, one tiny model per architecture trained by
`nmt train` for 12 epochs, then `nmt translate ... output_format=tsv` with
decoding=greedy and decoding=beam on the test sources (input.txt).
"""
import random, subprocess, os, sys
from pathlib import Path
root = Path("/tmp/legacy"); corp = root/"corpus"; corp.mkdir(exist_ok=True)
rng = random.Random(3)
def pair():
    ids=[rng.randrange(12) for _ in range(rng.randint(2,6))]
    return " ".join(f"s{i}" for i in ids), " ".join(f"T{i}" for i in reversed(ids))
for split,n in (("train",300),("val",40),("test",40)):
    ps=[pair() for _ in range(n)]
    (corp/f"{split}.src").write_text("".join(p[0]+"\n" for p in ps))
    (corp/f"{split}.tgt").write_text("".join(p[1]+"\n" for p in ps))
env=dict(os.environ, PYTHONPATH="/work/runbase", OMP_NUM_THREADS="1")
py="/work/main/.venv/bin/python"
data=["data=files"]+[f"data.{s}_{k}={corp}/{s}.{k}" for s in ("train","val","test") for k in ("src","tgt")]
for arch in ("sutskever","cho","bahdanau","luong"):
    extra=["model.num_layers=1"] if arch=="sutskever" else []
    cmd=[py,"-m","nmt","train",f"model={arch}","tokenizer=whitespace" ,"model.emb_dim=8","model.hidden_dim=24","model.dropout=0.0",*extra,
         "trainer.max_epochs=12","optimizer.lr=0.01","trainer.max_minutes=null","trainer.batch_size=32","trainer.bleu_every_epoch=false","trainer.test_split=null",*data,f"hydra.run.dir={root}/run_{arch}"]
    r=subprocess.run(cmd,env=env,capture_output=True,text=True)
    print(arch, r.returncode, r.stderr[-800:] if r.returncode else "")
