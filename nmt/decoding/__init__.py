"""Search over a model's output distributions; tensors and ids in, ids out.

``search`` (search.py) runs greedy, beam or sampling as a DecodingConfig says
and returns :class:`Hypothesis` lists; the strategies live in greedy.py,
beam.py and sampling.py.
"""
