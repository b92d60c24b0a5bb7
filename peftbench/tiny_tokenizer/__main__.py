from peftbench.tiny_tokenizer import write

write()
