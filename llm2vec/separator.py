"""The marker that separates an instruction from the text it applies to.

Training and evaluation texts are written as ``"{instruction}; " + SEPARATOR + text``; the
separator is removed before tokenization and only records where the instruction ends, so that
pooling with ``skip_instruction`` and the Stage I reconstruction masks know which tokens are text.
"""

SEPARATOR = "!@#$%^&*()"
