"""Running the basin program from a test: one place for the call and its failure message."""
import subprocess


def make_run(basin, **defaults):
    """Returns run(*args, check=True, **kw): runs basin with args (text output captured; defaults and
    kw go to subprocess.run) and, with check, fails the test with the end of basin's stderr."""
    def run(*args, check=True, **kw):
        r = subprocess.run([basin, *args], capture_output=True, text=True, **{**defaults, **kw})
        if check and r.returncode != 0:
            raise AssertionError(f"basin {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return r
    return run
