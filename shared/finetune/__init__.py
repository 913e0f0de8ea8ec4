"""Fine-tuning data from verified decisions: prepare (JSONL in the chat fine-tuning format), submit, follow.

Only labels someone or something confirmed are used: a person's feedback, or a rerun that succeeded. Nothing
leaves the machine or the storage account without `finetune submit`.
"""
