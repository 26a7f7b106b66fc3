from cnnstudy.download import fetch_archive, unpack_dataset
from cnnstudy.jobs import start_job

start_job(snakemake)
archive = fetch_archive(snakemake.params.url, snakemake.params.md5, snakemake.params.archive_dir)
unpack_dataset(archive, snakemake.params.name, snakemake.output[0])
