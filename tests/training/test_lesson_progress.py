import pytest
from batscope.training.lesson_progress import MAX_STEPS, LessonProgress


def test_move_to_opens_the_new_step():
    p = LessonProgress()
    p.param.update(goal_met=True, hints_shown=2)
    p.move_to("neuron", 3)
    assert p.to_dict() == {"lesson": "neuron", "step": 3, "goal_met": False, "hints_shown": 0}


def test_step_out_of_bounds_is_refused_and_changes_nothing():
    p = LessonProgress(lesson="neuron", step=1)
    with pytest.raises(ValueError, match="step"):
        p.step = MAX_STEPS
    assert p.step == 1
