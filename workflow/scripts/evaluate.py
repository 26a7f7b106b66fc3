from cnnstudy.data import load_split
from cnnstudy.devices import select_device
from cnnstudy.evaluation import write_evaluation
from cnnstudy.inference import evaluate_checkpoint
from cnnstudy.jobs import start_job

start_job(snakemake)
device = select_device(snakemake.params.device)
test_split = load_split(snakemake.input.test, device)
metrics, predictions, description = evaluate_checkpoint(
    snakemake.input.checkpoint, test_split, device, snakemake.params.batch_size
)
write_evaluation(
    description,
    metrics,
    predictions,
    snakemake.output.metrics,
    snakemake.output.confusion,
    snakemake.output.predictions,
)
