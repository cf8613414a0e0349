"""MiniMind (dense and MoE) under transformers' own `ModelTesterMixin` and `ConfigTester`, written on the pattern of
transformers' `tests/models/qwen3/test_modeling_qwen3.py`. Not collected by `make test`:
`tests/test_transformers_common.py` runs it in a subprocess with the sdist's `tests/` package importable as `hf_common_tests`."""

import unittest

from hf_common_tests.test_configuration_common import ConfigTester
from hf_common_tests.test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_MAPPING_NAMES

from minimind_hf import MiniMindConfig, MiniMindForCausalLM, MiniMindModel

# The mixin tells backbones from heads (and which heads get labels) by these in-tree name tables; an in-tree model is
# listed there, so MiniMind is too, for the test process only.
MODEL_MAPPING_NAMES.setdefault("minimind", "MiniMindModel")
MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.setdefault("minimind", "MiniMindForCausalLM")


class MiniMindModelTester:
    def __init__(self, parent, use_moe=False, batch_size=2, seq_length=7):
        self.parent, self.use_moe = parent, use_moe
        self.batch_size, self.seq_length = batch_size, seq_length
        self.is_training = True
        self.vocab_size, self.hidden_size, self.num_hidden_layers = 99, 32, 2
        self.num_attention_heads, self.num_key_value_heads, self.intermediate_size = 4, 2, 37

    def get_config(self):
        return MiniMindConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
            intermediate_size=self.intermediate_size, max_position_embeddings=512, use_moe=self.use_moe,
            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, pad_token_id=0, bos_token_id=1,
            eos_token_id=2,
        )  # fmt: skip

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {"input_ids": input_ids, "attention_mask": attention_mask}


class MiniMindModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (MiniMindModel, MiniMindForCausalLM)
    use_moe = False

    def setUp(self):
        self.model_tester = MiniMindModelTester(self, use_moe=self.use_moe)
        self.config_tester = ConfigTester(self, config_class=MiniMindConfig, hidden_size=37, use_moe=self.use_moe)

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip("the sdist does not ship generation/test_utils.py (GenerationTesterMixin) to inherit from")
    def test_generation_tester_mixin_inheritance(self):
        pass


class MiniMindMoeModelTest(MiniMindModelTest):
    use_moe = True
    # top-2 of 4 experts on 14 tokens: an expert may get no token in a given check (qwen3_moe sets the same)
    test_all_params_have_gradient = False
