from dense_descriptor_grasp.geometry.selfcheck import main, run_selfcheck


def test_selfcheck_passes_and_reports_small_errors(capsys):
    result = run_selfcheck()
    assert result["exp_log_max_error"] < 1e-9
    assert main([]) == 0
    assert "OK" in capsys.readouterr().out
