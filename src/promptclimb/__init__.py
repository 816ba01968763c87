"""promptclimb: LLMs as black-box optimizers of prompts for vision-language models."""
