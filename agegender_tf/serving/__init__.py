"""Using a trained model (DESIGN.md, "Using a trained model"): the predictor, its precision on this
machine, faces in photos, drawing them, export (and its accuracy check), the web app and their CLI.

Importing this package loads no TensorFlow and no OpenCV: ``agegender --help`` stays fast.
"""

# The face detectors a photo can go through, the default first.
DETECTORS = ("blazeface", "mtcnn", "haar")
