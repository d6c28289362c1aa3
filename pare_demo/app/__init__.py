"""The app layer: what the Gradio app (app.py at the repository root) shows, built on the
core pipeline in pare_demo (detect, crop, models, body, predictor, render, visualize, ...).

    engine.py     one predictor and renderer shared by every tab, switchable at run time
    analysis.py   everything the Image tab shows for one picture
    live.py       the webcam path: one frame in, the annotated frame out, fast
    explorer.py   the 3DPW explorer: ground truth against the prediction, frame by frame
    video/        the Video tab's pipeline: reader, tracking, smoothing, the two passes
    ui/           the Gradio page: one module per tab, build_ui(engine)

The dependency goes one way: this package imports the core, the core never imports it (only
the predict and benchmark CLIs use it, to draw and time what the app shows).
Nothing here is imported by `import pare_demo.app` itself, so the analysis, webcam and
video code can be used without Gradio.
"""
