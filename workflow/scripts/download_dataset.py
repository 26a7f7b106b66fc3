from cnnstudy.base.jobs import start_job
from cnnstudy.data.download import fetch_archive, unpack_dataset

start_job(snakemake)
# The URL is read from the config, not a param: the md5 names the content, so a mirror reruns nothing.
url = snakemake.config["dataset"]["url"]
archive = fetch_archive(url, snakemake.params.md5, snakemake.params.archive_dir)
unpack_dataset(archive, snakemake.params.name, snakemake.output[0])
