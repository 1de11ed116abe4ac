"""How the Ray runner sizes its worker pools and what each worker asks for, with a stand-in for Ray (the real
runtime runs in test_batch_ray.py): jobs whose model needs a GPU ask for one, the bundled model's do not."""

from app.jobs.jobs_file import BatchSettings, Job
from app.jobs.ray_runner import pools_for
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions


class FakeRay:
    """Records the resources each actor asks for."""

    def __init__(self, resources):
        self.resources = resources
        self.asked: list[dict] = []

    def cluster_resources(self):
        return self.resources

    def remote(self, **options):
        asked = self.asked

        class Actor:
            @staticmethod
            def options(name):
                return Actor.Named(name)

            class Named:
                def __init__(self, name):
                    self.name = name

                def remote(self, settings):
                    asked.append({**options, "name": self.name})
                    return self.name

        return lambda cls: Actor


class Said(list):
    def say(self, line):
        self.append(line)


def jobs(models):
    return [
        Job(i, str(i), "mp4", GenerationRequest(prompt="a red circle", model=model), f"{i:064x}")
        for i, model in enumerate(models, start=1)
    ]


WAN = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


def test_gpu_jobs_ask_for_a_gpu_and_bundled_jobs_for_a_cpu():
    ray, said = FakeRay({"CPU": 8, "GPU": 2}), Said()
    pools = pools_for(
        ray, jobs(["kinemo-starter", WAN, "kinemo-starter", WAN, WAN]), BatchSettings(RunOptions()), None, said
    )
    assert [job.request.model for job in pools[True].jobs] == [WAN] * 3
    assert [job.request.model for job in pools[False].jobs] == ["kinemo-starter"] * 2
    gpu = [a for a in ray.asked if a["num_gpus"] == 1]
    cpu = [a for a in ray.asked if a["num_gpus"] == 0]
    assert len(gpu) == 2 and len(cpu) == 2, "as many workers as the cluster holds, no more than the jobs"
    assert all(a["num_cpus"] == 1 and a["max_restarts"] == 0 for a in ray.asked) and not said


def test_workers_caps_the_pools_and_a_cluster_without_gpus_says_so():
    ray, said = FakeRay({"CPU": 8}), Said()
    pools = pools_for(ray, jobs([WAN, "kinemo-starter", WAN]), BatchSettings(RunOptions()), 2, said)
    assert list(pools) == [False] and len(pools[False].jobs) == 3 and len(ray.asked) == 2
    assert said == ["warning: the Ray cluster has no GPU; the diffusers models' jobs run on CPU workers"]
    ray = FakeRay({"CPU": 8, "GPU": 4})
    pools = pools_for(ray, jobs([WAN, WAN]), BatchSettings(RunOptions(device="cpu")), None, Said())
    assert list(pools) == [False], "--device cpu asks for no GPU"
