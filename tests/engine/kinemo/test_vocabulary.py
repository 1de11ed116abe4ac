from engine.kinemo.vocabulary import BOS, MAX_TOKENS, TOKEN_IDS, object_caption, split_words, tokenize


def test_known_prompt_has_no_unknown_words():
    tokens = tokenize("A red circle moves right on a black background.")
    assert tokens.ids[0] == BOS
    assert tokens.unknown_words == ()
    assert [TOKEN_IDS["red"], TOKEN_IDS["circle"]] == list(tokens.ids[2:4])


def test_unknown_words_are_reported_in_order_not_dropped_silently():
    tokens = tokenize("a majestic red dragon moves right, café ünïcode")
    assert tokens.unknown_words == ("majestic", "dragon", "café", "ünïcode")


def test_aliases_and_case_folding():
    assert split_words("GREY Square") == ["gray", "square"]


def test_articles_follow_the_grammar():
    assert object_caption("orange", "circle", "grows", "navy").startswith("an orange")
    assert object_caption("red", "circle", "grows", "navy").startswith("a red")


def test_long_prompts_are_truncated_and_say_so():
    tokens = tokenize(" ".join(["red"] * 30))
    assert len(tokens.ids) == MAX_TOKENS
    assert len(tokens.truncated_words) == 30 + 1 - MAX_TOKENS
