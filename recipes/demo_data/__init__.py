"""What recipes/make_demo_data.py is made of: the hand-written content in content/*.yaml, and one module per kind of
record built from it (single_turn, multi_turn, reasoning, tools, pretraining) on top of the message helpers."""
