#!/usr/bin/env python3
"""Expected ids and loss masks of the chat templates, from the reference tokenizers.

Writes tests/fixtures/tokenizer/chat_<template>_<vocab>.json: for several conversations, the ids
that each family's documented prompt format gives with the reference tokenizer (Python
sentencepiece for LLaMA-2 / Mistral, tiktoken for LLaMA-3), and the loss mask.

How the reference is made, per template:
  llama3, llama3.1,       the official HF chat_template (Meta-Llama-3-8B-Instruct, Llama-3.1-8B-Instruct,
  llama2, chatml, qwen2.5 Llama-2-chat-hf, Qwen2-7B-Instruct, Qwen2.5-7B-Instruct; texts below) rendered
                          with jinja2 as transformers does (no tools, no date_string: "26 Jul 2024");
                          the string is split at special tokens and each piece between them is
                          encoded on its own (sentencepiece: as sp.encode encodes it alone, i.e. the
                          behaviour of Meta's Llama-2 chat_completion and of HF's Llama-2
                          tokenizer.json).
  mistral                 mistral-common's algorithm (Mistral's reference): v1 vocabulary:
                          BOS + encode("[INST] {user} [/INST]") + encode(assistant) + EOS ...,
                          system prompt before the first user message; v3 vocabulary: [INST]/[/INST]
                          control ids around encode(user), encode(assistant.rstrip(" ")), system prompt
                          before the last user message. The v1 string is also checked against the
                          official HF template of Mistral-7B-Instruct-v0.1/v0.2.
  alpaca                  Stanford Alpaca's prompt (README form, "### Response:\\n"), BOS first,
                          EOS after the response.
The loss mask marks tokens that cover any byte of an assistant message (plus the template text the
model must emit around it: LLaMA-2's space after [/INST] and before </s>) and the end-of-turn token,
so the tokens before a turn's first target are the generation prompt's; with
train_on_prompt every token but a leading BOS. Token byte ranges come from the reference tokenizer
(sentencepiece's immutable proto begin/end; tiktoken token bytes).

Also writes official_chat_templates.json: those official texts verbatim (and one template maintune
does not implement exactly), for the `template: from_model` tests.

Run (the venv with sentencepiece, tiktoken, jinja2):
    python scripts/make_chat_vectors.py [--shared ../shared/data] [--out tests/fixtures/tokenizer]
"""

import argparse
import base64
import json
import os
import sys

import jinja2
import sentencepiece as spm
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# --- official templates -----------------------------------------------------------------------
LLAMA3_TEMPLATE = (  # meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
LLAMA2_TEMPLATE = (  # meta-llama/Llama-2-7b-chat-hf tokenizer_config.json
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
MISTRAL_V1_TEMPLATE = (  # mistralai/Mistral-7B-Instruct-v0.1 and v0.2 tokenizer_config.json (2024)
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n")
CHATML_TEMPLATE = (  # Qwen/Qwen2-7B-Instruct tokenizer_config.json
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

# meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json: tools, builtin tools and tool calls besides;
# without them, a system header with the knowledge cutoff and date_string (default "26 Jul 2024").
LLAMA31_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""
# Qwen/Qwen2.5-7B-Instruct tokenizer_config.json: ChatML with its own default system prompt (and tools).
QWEN25_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
LLAMA31_DATE = "26 Jul 2024"  # the template's date_string default: transformers passes none
QWEN2_SYSTEM = "You are a helpful assistant."
QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

ALPACA_NO_INPUT = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.")
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.")

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def jinja_render(template, messages, bos, eos, add_generation_prompt):
    """As transformers' apply_chat_template renders (sandboxed, trim_blocks, lstrip_blocks)."""
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token=bos, eos_token=eos,
                                            add_generation_prompt=add_generation_prompt)


# --- conversations ------------------------------------------------------------------------------
def msg(role, content):
    return {"role": role, "content": content}


CHAT_CASES = [
    {"name": "single_user", "messages": [msg("user", "Hello!")], "add_generation_prompt": True},
    {"name": "system_user_assistant", "messages": [msg("system", "You are a pirate."), msg("user", "What is 2+2?"),
                                                   msg("assistant", "Four, matey.")]},
    {"name": "multi_turn", "messages": [msg("user", "Hi"), msg("assistant", "Hello! How can I help?"),
                                        msg("user", "Tell me a joke."),
                                        msg("assistant", "Why did the chicken cross the road?")]},
    {"name": "system_multi_turn_prompt", "messages": [msg("system", "Be brief."), msg("user", "Name a color."),
                                                      msg("assistant", "Blue."), msg("user", "Another?")],
     "add_generation_prompt": True},
    {"name": "empty_assistant", "messages": [msg("user", "Say nothing."), msg("assistant", "")]},
    {"name": "empty_user", "messages": [msg("user", ""), msg("assistant", "You said nothing.")]},
    {"name": "empty_system", "messages": [msg("system", ""), msg("user", "Hi there"), msg("assistant", "Hello.")]},
    {"name": "whitespace_unicode", "messages": [msg("system", "  Réponds en français.\n"),
                                                msg("user", "  Café ☕ — naïve façade?\n\n"),
                                                msg("assistant", "\tOui 🦙 c'est ça.  ")]},
    {"name": "code", "messages": [msg("user", "Write code:\n```python\ndef f(x):\n    return x  * 2\n```"),
                                  msg("assistant", "```python\nprint(  f(3) )\n```\nDone.")]},
    {"name": "numbers", "messages": [msg("user", "12345 + 678 = ?"), msg("assistant", "13023")]},
    {"name": "unmerged_starts", "messages": [msg("user", "Pick one."), msg("assistant", "🦙"),
                                             msg("user", "And a number?"), msg("assistant", "(7) or 8")]},
    {"name": "multi_turn_train_on_prompt", "messages": [msg("user", "Hi"), msg("assistant", "Hello!"),
                                                        msg("user", "Bye"), msg("assistant", "Goodbye.")],
     "train_on_prompt": True},
]

ALPACA_CASES = [
    {"name": "instruction", "messages": [msg("user", "Give three tips for staying healthy."),
                                         msg("assistant", "1. Eat well.\n2. Exercise.\n3. Sleep.")]},
    {"name": "instruction_input", "messages": [msg("user", "Translate to French."), msg("user", "Good morning"),
                                               msg("assistant", "Bonjour")]},
    {"name": "empty_input", "messages": [msg("user", "Name a prime."), msg("user", ""), msg("assistant", "7")]},
    {"name": "system_preamble", "messages": [msg("system", "You are a careful assistant."),
                                             msg("user", "Add 2 and 3."), msg("assistant", "5")]},
    {"name": "newline_response", "messages": [msg("user", "List two."), msg("assistant", "\n- one\n- two")]},
    {"name": "prompt_only", "messages": [msg("user", "What is the capital of France?")],
     "add_generation_prompt": True},
    {"name": "train_on_prompt", "messages": [msg("user", "Say hi."), msg("assistant", "Hi!")],
     "train_on_prompt": True},
]


# --- reference tokenizers -----------------------------------------------------------------------
class SpRef:
    def __init__(self, model, added=None):
        self.sp = spm.SentencePieceProcessor(model_file=model)
        self.specials = {}
        for i in range(self.sp.get_piece_size()):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                self.specials[self.sp.id_to_piece(i)] = i
        self.specials.update(added or {})
        self.bos, self.eos = self.sp.bos_id(), self.sp.eos_id()

    def encode(self, text):
        """ids and byte ranges of text encoded alone, as sp.encode does. The ranges come from the
        pieces themselves (these models normalize nothing: a piece is its input bytes with " " as
        U+2581, a byte piece is one byte, the dummy-prefix space covers no input byte), checked to
        spell the input exactly."""
        if not text:
            return [], []
        ids = self.sp.encode(text)
        raw = text.encode("utf-8")
        spans, pos, rebuilt = [], -1, b""  # the dummy prefix sits at virtual byte -1
        for i in ids:
            piece = self.sp.id_to_piece(i)
            b = bytes([int(piece[3:5], 16)]) if self.sp.is_byte(i) else piece.replace("\u2581", " ").encode("utf-8")
            spans.append((max(pos, 0), max(pos + len(b), 0)))
            pos += len(b)
            rebuilt += b
        if rebuilt != b" " + raw:
            sys.exit(f"sentencepiece pieces do not spell {text!r}")
        return ids, spans


class TiktokenRef:
    def __init__(self, model):
        import tiktoken
        ranks = {}
        with open(model, "rb") as f:
            for line in f:
                if line.strip():
                    tok, rank = line.split()
                    ranks[base64.b64decode(tok)] = int(rank)
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                 "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                 "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
        names += [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]
        self.specials = {n: len(ranks) + i for i, n in enumerate(names)}
        self.enc = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PAT, mergeable_ranks=ranks,
                                     special_tokens=self.specials)
        self.bos, self.eos = self.specials["<|begin_of_text|>"], self.specials["<|end_of_text|>"]

    def encode(self, text):
        ids = self.enc.encode(text, disallowed_special=())
        spans, pos = [], 0
        for i in ids:
            n = len(self.enc.decode_single_token_bytes(i))
            spans.append((pos, pos + n))
            pos += n
        assert pos == len(text.encode("utf-8"))
        return ids, spans


# --- rendering as parts: ("special", text, target) | ("text", str, target) | ("cut",) ------------
def strip_py(s):
    return s.strip()


def parts_llama3(messages, gen):
    p = [("special", "<|begin_of_text|>", False)]
    for m in messages:
        t = m["role"] == "assistant"
        p += [("special", "<|start_header_id|>", False), ("text", m["role"], False),
              ("special", "<|end_header_id|>", False), ("text", "\n\n", False), ("text", m["content"].strip(), t),
              ("special", "<|eot_id|>", t)]
    if gen:
        p += [("special", "<|start_header_id|>", False), ("text", "assistant", False),
              ("special", "<|end_header_id|>", False), ("text", "\n\n", False)]
    return p


def parts_llama2(messages):
    system, rest = None, messages
    if messages[0]["role"] == "system":
        system, rest = messages[0]["content"], messages[1:]
    p = []
    for i, m in enumerate(rest):
        if m["role"] == "user":
            c = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m["content"] if i == 0 and system is not None else m["content"]
            p += [("special", "<s>", False), ("text", "[INST] " + c.strip() + " [/INST]", False)]
        else:
            # The space before the answer is the answer's: the generation prompt ends at [/INST].
            p += [("text", " ", True), ("text", m["content"].strip(), True), ("text", " ", True),
                  ("special", "</s>", True)]
    return p


def parts_mistral(messages, control):
    system, rest = None, messages
    if messages[0]["role"] == "system":
        system, rest = messages[0]["content"], messages[1:]
    users = [i for i, m in enumerate(rest) if m["role"] == "user"]
    p = [("special", "<s>", False)]
    for i, m in enumerate(rest):
        if m["role"] == "user":
            at = users[-1] if control else users[0]
            c = system + "\n\n" + m["content"] if system and i == at else m["content"]
            if control:
                p += [("special", "[INST]", False), ("text", c, False), ("special", "[/INST]", False)]
            else:
                p += [("cut",), ("text", "[INST] " + c + " [/INST]", False), ("cut",)]
        else:
            p += [("text", m["content"].rstrip(" ") if control else m["content"], True), ("special", "</s>", True)]
    return p


def parts_llama31(messages, gen):
    """Llama 3.1: the system header always, with the knowledge cutoff, the date and the (trimmed)
    system message if any; then the messages as LLaMA-3 writes them."""
    system, rest = "", messages
    if messages[0]["role"] == "system":
        system, rest = messages[0]["content"].strip(), messages[1:]
    header = "\n\nCutting Knowledge Date: December 2023\nToday Date: " + LLAMA31_DATE + "\n\n" + system
    p = [("special", "<|begin_of_text|>", False), ("special", "<|start_header_id|>", False), ("text", "system", False),
         ("special", "<|end_header_id|>", False), ("text", header, False), ("special", "<|eot_id|>", False)]
    return p + parts_llama3(rest, gen)[1:]


def parts_chatml(messages, gen, default_system=QWEN2_SYSTEM):
    p = []
    if messages[0]["role"] != "system":
        p += [("special", "<|im_start|>", False), ("text", "system\n" + default_system, False),
              ("special", "<|im_end|>", False), ("text", "\n", False)]
    for m in messages:
        t = m["role"] == "assistant"
        p += [("special", "<|im_start|>", False), ("text", m["role"] + "\n", False), ("text", m["content"], t),
              ("special", "<|im_end|>", t), ("text", "\n", False)]
    if gen:
        p += [("special", "<|im_start|>", False), ("text", "assistant\n", False)]
    return p


def parts_alpaca(messages, bos_text, eos_text):
    ms = list(messages)
    system = ms.pop(0)["content"] if ms[0]["role"] == "system" else None
    instruction = ms.pop(0)["content"]
    inp = ms.pop(0)["content"] if ms and ms[0]["role"] == "user" else None
    response = ms.pop(0)["content"] if ms and ms[0]["role"] == "assistant" else None
    assert not ms
    with_input = bool(inp)
    pre = system if system is not None else (ALPACA_INPUT if with_input else ALPACA_NO_INPUT)
    prompt = pre + "\n\n### Instruction:\n" + instruction
    if with_input:
        prompt += "\n\n### Input:\n" + inp
    prompt += "\n\n### Response:\n"
    p = [("special", bos_text, False), ("text", prompt, False)]
    if response is not None:
        p += [("text", response, True), ("special", eos_text, True)]
    return p


def parts_string(parts):
    return "".join(x[1] for x in parts if x[0] != "cut")


def answer_cuts(ref, seg, targets):
    """Byte offsets where an answer starts and the joint encoding of seg does not begin with the
    text before it encoded alone (a generation prompt ends there). Only a byte-level BPE merges
    across (LLaMA-3: "### Response:\\n" + "\\n..." gives ":\\n\\n"); those sides are encoded
    separately, as maintune does. SentencePiece would add a dummy-prefix space: an error."""
    ids, spans = ref.encode(seg)
    raw = seg.encode("utf-8")
    cuts = []
    for tb, _ in targets:
        if tb == 0:
            continue
        k = 0
        while k < len(ids) and spans[k][0] < tb and spans[k][1] <= tb:
            k += 1
        if (k < len(ids) and spans[k][0] < tb) or ref.encode(raw[:tb].decode("utf-8"))[0] != ids[:k]:
            if isinstance(ref, SpRef):
                sys.exit(f"sentencepiece merges the prompt's end into the answer in {seg!r}")
            cuts.append(tb)
    return cuts


def tokenize_parts(ref, parts, train_on_prompt):
    """ids and loss mask of the parts; also whether a text piece had to be cut at an answer."""
    ids, mask = [], []
    seg, targets, was_cut = "", [], False

    def flush():
        nonlocal seg, targets, was_cut
        if not seg:
            return
        raw = seg.encode("utf-8")
        bounds = [0] + answer_cuts(ref, seg, targets) + [len(raw)]
        was_cut |= len(bounds) > 2
        t_ids, spans = [], []
        for a, b in zip(bounds, bounds[1:]):
            piece_ids, piece_spans = ref.encode(raw[a:b].decode("utf-8"))
            t_ids += piece_ids
            spans += [(x + a, y + a) for x, y in piece_spans]
        for i, (b, e) in zip(t_ids, spans):
            hit = any((max(b, tb) < min(e, te)) if e > b else (tb <= b < te) for tb, te in targets)
            ids.append(i)
            mask.append(1 if hit else 0)
        assert all(0 <= b <= e <= len(raw) for b, e in spans)
        seg, targets = "", []

    for part in parts:
        if part[0] == "cut":
            flush()
        elif part[0] == "special":
            flush()
            ids.append(ref.specials[part[1]])
            mask.append(1 if part[2] else 0)
        elif part[1]:
            start = len(seg.encode("utf-8"))
            seg += part[1]
            if part[2]:
                if targets and targets[-1][1] == start:
                    targets[-1] = (targets[-1][0], len(seg.encode("utf-8")))
                else:
                    targets.append((start, len(seg.encode("utf-8"))))
    flush()
    if train_on_prompt:
        mask = [0 if (i == 0 and ids[0] == ref.bos) else 1 for i in range(len(ids))]
    return ids, mask, was_cut


def tokenize_string(ref, text):
    """The rendered string split at special tokens, each piece encoded alone."""
    specials = sorted(ref.specials, key=len, reverse=True)
    ids, i, seg = [], 0, 0
    while i < len(text):
        hit = next((s for s in specials if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        ids += ref.encode(text[seg:i])[0]
        ids.append(ref.specials[hit])
        i += len(hit)
        seg = i
    ids += ref.encode(text[seg:])[0]
    return ids


def parts_for(template, vocab, ref, messages, gen):
    if template == "llama3":
        return parts_llama3(messages, gen)
    if template == "llama2":
        return parts_llama2(messages)
    if template == "chatml":
        return parts_chatml(messages, gen)
    if template == "llama3.1":
        return parts_llama31(messages, gen)
    if template == "qwen2.5":
        return parts_chatml(messages, gen, QWEN25_SYSTEM)
    if template == "mistral":
        return parts_mistral(messages, "[INST]" in ref.specials)
    llama3 = vocab == "llama3"
    return parts_alpaca(messages, "<|begin_of_text|>" if llama3 else "<s>", "<|end_of_text|>" if llama3 else "</s>")


OFFICIAL = {"llama3": (LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|end_of_text|>"),
            "llama2": (LLAMA2_TEMPLATE, "<s>", "</s>"), "chatml": (CHATML_TEMPLATE, "<s>", "<|im_end|>"),
            "llama3.1": (LLAMA31_TEMPLATE, "<|begin_of_text|>", "<|end_of_text|>"),
            "qwen2.5": (QWEN25_TEMPLATE, "<s>", "<|im_end|>")}


def check_boundary(template, vocab, name, ref, messages):
    """The invariant maintune keeps: before every assistant turn, the generation prompt (the official
    template's add_generation_prompt=True where there is one) is exactly the ids of the conversation
    up to that turn's first target token."""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = messages[:k]
        gen = tokenize_parts(ref, parts_for(template, vocab, ref, before, True), False)[0]
        if template in OFFICIAL:
            tmpl, bos, eos = OFFICIAL[template]
            official = tokenize_string(ref, jinja_render(tmpl, before, bos, eos, True))
            if official != gen:
                sys.exit(f"{template}/{vocab} {name}: HF's generation prompt {official} differs from ours {gen}")
        ids, mask, _ = tokenize_parts(ref, parts_for(template, vocab, ref, messages[:k + 1], False), False)
        first = len(tokenize_parts(ref, parts_for(template, vocab, ref, before, False), False)[0])
        while first < len(ids) and not mask[first]:
            first += 1
        if ids[:first] != gen:
            sys.exit(f"{template}/{vocab} {name}, turn {k}: the generation prompt {gen} is not the training "
                     f"prefix {ids[:first]}")


def make(template, vocab, tokenizer, ref, cases, out_dir):
    out_cases = []
    for case in cases:
        messages, gen = case["messages"], case.get("add_generation_prompt", False)
        top = case.get("train_on_prompt", False)
        parts = parts_for(template, vocab, ref, messages, gen)
        official = None
        if template in OFFICIAL:
            tmpl, bos, eos = OFFICIAL[template]
            official = jinja_render(tmpl, messages, bos, eos, gen)
        elif template == "mistral" and "[INST]" not in ref.specials:
            # The HF template writes the space that sentencepiece's dummy prefix gives each
            # separately encoded message; it differs for an empty assistant message (HF: " </s>",
            # mistral-common: no text) and when the system prompt is empty.
            hf = jinja_render(MISTRAL_V1_TEMPLATE, messages, "<s>", "</s>", gen)
            segs, cur = [], None
            for x in parts:
                if x[0] == "text":
                    cur = (cur or "") + x[1]
                else:
                    if cur is not None:
                        segs.append(cur)
                    cur = None
                    if x[0] == "special":
                        segs.append(x[1])
            ours = "".join(s if s in ("<s>", "</s>") else " " + s for s in segs if s)
            if case["name"] not in ("empty_assistant", "empty_system") and hf != ours:
                sys.exit(f"mistral v1 {case['name']}: HF template gives {hf!r}, ours {ours!r}")
        text = parts_string(parts)
        if official is not None and official != text:
            sys.exit(f"{template}/{vocab} {case['name']}: official template renders {official!r}, ours {text!r}")
        ids, mask, was_cut = tokenize_parts(ref, parts, top)
        check_boundary(template, vocab, case["name"], ref, messages)
        if template in ("llama3", "llama3.1", "llama2", "chatml", "qwen2.5", "alpaca") and not was_cut and tokenize_string(ref, text) != ids:
            sys.exit(f"{template}/{vocab} {case['name']}: string and part tokenizations differ")
        out_cases.append({"name": case["name"], "messages": messages, "add_generation_prompt": gen,
                          "train_on_prompt": top, "text": text, "ids": ids, "loss_mask": mask})
    path = os.path.join(out_dir, f"chat_{template}_{vocab}.json")
    with open(path, "w", encoding="utf-8") as f:
        head = json.dumps({"template": template, "vocab": vocab, "tokenizer": tokenizer}, ensure_ascii=False)
        f.write(head[:-1] + ', "cases": [\n')  # one case per line
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in out_cases))
        f.write("\n]}\n")
    print(f"wrote {path} ({len(out_cases)} cases)")


def write_official(out_dir):
    """The official templates verbatim, for maintune's `template: from_model` tests (a model whose
    tokenizer_config.json holds one of them renders as that template), and one it does not
    implement exactly (Mistral-7B-Instruct's HF template, which differs from mistral-common's
    rendering for an empty answer or system prompt)."""
    official = {name: t[0] for name, t in OFFICIAL.items()}
    path = os.path.join(out_dir, "official_chat_templates.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"official": official, "unsupported": {"mistral-7b-instruct-v0.1": MISTRAL_V1_TEMPLATE}}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser()
    default_shared = os.path.join(os.environ["MT_SHARED_DIR"], "data") if os.environ.get("MT_SHARED_DIR") else \
        os.path.join(ROOT, "..", "shared", "data")
    ap.add_argument("--shared", default=default_shared)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer"))
    args = ap.parse_args()
    tk = os.path.join(args.shared, "tokenizers")
    llama2 = SpRef(os.path.join(tk, "llama2", "tokenizer.model"))
    mistral = SpRef(os.path.join(tk, "mistral", "tokenizer.model"))
    mistral3 = SpRef(os.path.join(tk, "mistral-v3", "tokenizer.model"))
    chatml = SpRef(os.path.join(tk, "mistral", "tokenizer.model"), {"<|im_end|>": 32000, "<|im_start|>": 32001})
    llama3 = TiktokenRef(os.path.join(tk, "llama3", "tokenizer.model"))
    # "tokenizer": the model file under ../shared/data, and the committed HF config dir (if any)
    # that the test puts beside it.
    make("llama3", "llama3", {"model": "tokenizers/llama3/tokenizer.model"}, llama3, CHAT_CASES, args.out)
    make("llama2", "llama2", {"model": "tokenizers/llama2/tokenizer.model", "hf_dir": "llama2-chat"}, llama2,
         CHAT_CASES, args.out)
    make("mistral", "mistral", {"model": "tokenizers/mistral/tokenizer.model"}, mistral, CHAT_CASES, args.out)
    make("mistral", "mistral-v3", {"model": "tokenizers/mistral-v3/tokenizer.model", "hf_dir": "mistral-v3-instruct"},
         mistral3, CHAT_CASES, args.out)
    make("chatml", "mistral", {"model": "tokenizers/mistral/tokenizer.model", "hf_dir": "chatml-mistral"}, chatml,
         CHAT_CASES, args.out)
    make("alpaca", "llama2", {"model": "tokenizers/llama2/tokenizer.model"}, llama2, ALPACA_CASES, args.out)
    make("alpaca", "llama3", {"model": "tokenizers/llama3/tokenizer.model"}, llama3, ALPACA_CASES, args.out)
    make("llama3.1", "llama3", {"model": "tokenizers/llama3/tokenizer.model"}, llama3, CHAT_CASES, args.out)
    make("qwen2.5", "mistral", {"model": "tokenizers/mistral/tokenizer.model", "hf_dir": "chatml-mistral"}, chatml,
         CHAT_CASES, args.out)
    write_official(args.out)


if __name__ == "__main__":
    main()
