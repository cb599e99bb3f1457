from arc24_lib.selection import rank_candidates, select_attempts

A, B, C = [[1, 2]], [[3]], [[4, 4], [4, 4]]


def rec(grid, logprob, task="t", test_index=0, n_tokens=None):
    """A prediction record; by default one token per cell and per row end, as the grid encoders write."""
    if n_tokens is None and grid is not None:
        n_tokens = sum(len(row) + 1 for row in grid)
    return {"task_id": task, "test_index": test_index, "grid": grid, "cumulative_logprob": logprob,
            "n_tokens": n_tokens}


def test_rank_candidates_by_count_then_logprob_per_token():
    records = [rec(A, -6.0), rec(B, -1.0), rec(A, -3.0), rec(C, -0.5), rec(None, None), rec(B, -2.0)]
    ranked = rank_candidates(records)
    assert [c.as_list() for c in ranked] == [B, A, C]  # B and A tie on 2 votes; B: -0.75 a token, A: -1.5
    assert ranked[0].count == 2 and ranked[0].logprob_per_token == -0.75 and ranked[1].logprob_per_token == -1.5


def test_vote_ties_do_not_favour_small_grids():
    # the 1x1 grid has the higher log-probability in all (-1.2 against -2.4), but the 2x2 grid, with three
    # times its tokens, the higher log-probability per token (-0.4 against -0.6)
    records = [rec(B, -1.2), rec(C, -2.4)]
    assert [c.as_list() for c in rank_candidates(records)] == [C, B]
    assert select_attempts(records, {"t": 1})["t"] == [[C, B]]
    unknown = [rec(B, -1.2, n_tokens=0), rec(C, None)]  # unknown counts rank last, without failing
    assert [c.logprob_per_token for c in rank_candidates(unknown)] == [float("-inf")] * 2


def test_select_attempts_fills_missing_with_none_and_lists_unpredicted_inputs():
    records = [rec(A, -1.0), rec(A, -1.0), rec(None, None, test_index=1), rec(B, -9.0, task="u")]
    attempts = select_attempts(records, {"t": 3, "u": 1, "v": 1})
    assert attempts["t"] == [[A, None], [None, None], [None, None]]
    assert attempts["u"] == [[B, None]] and attempts["v"] == [[None, None]]


def key(grid):
    return tuple(map(tuple, grid))


def test_augmented_scores_rank_before_votes():
    records = [rec(A, -1.0), rec(A, -1.0), rec(A, -1.0), rec(B, -3.0), rec(C, -2.0)]
    ranked = rank_candidates(records, {key(B): -0.5, key(A): -4.0})
    assert [c.as_list() for c in ranked] == [B, A, C]  # scored first, best score first; C unscored comes last
    assert select_attempts(records, {"t": 1})["t"] == [[A, C]]  # without scores: votes, then mean logprob


def test_the_two_best_scored_grids_are_submitted_even_against_the_votes():
    # the product of experts decides: A, written most often, has the worst score and is left out
    records = [rec(A, -1.0), rec(A, -1.0), rec(A, -1.0), rec(B, -3.0), rec(C, -2.0), rec(C, -2.0)]
    scores = {("t", 0): {key(C): -0.1, key(B): -0.2, key(A): -0.9}}
    attempts = select_attempts(records, {"t": 1, "u": 1}, scores=scores)
    assert attempts["t"] == [[C, B]] and attempts["u"] == [[None, None]]
    assert select_attempts(records, {"t": 1}, n_attempts=3, scores=scores)["t"] == [[C, B, A]]
    # a grid left unscored (past scored_candidates) comes after every scored one, whatever its votes
    assert select_attempts(records, {"t": 1}, scores={("t", 0): {key(B): -0.2, key(C): -0.9}})["t"] == [[B, C]]
